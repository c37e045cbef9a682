/** `influence fit` of a TinyLlama-1.1B-shaped model (Llama; the hub ships bfloat16 weights). */
import { TINYLLAMA_1B, fitShapeSection } from "../bench-util.js";

export default fitShapeSection("TinyLlama-1.1B", TINYLLAMA_1B, "BF16");

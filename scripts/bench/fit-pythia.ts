/** `influence fit` of a Pythia-1B-shaped model (GPT-NeoX; the hub ships float16 weights). */
import { PYTHIA_1B, fitShapeSection } from "../bench-util.js";

export default fitShapeSection("Pythia-1B", PYTHIA_1B, "F16");

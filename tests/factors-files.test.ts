/**
 * A fit's factors files read back a tensor at a time (loadFactors, loadCovariance): the arrays the
 * files give read whole, factors that diagonalise the reference fixture's A and S with its damping,
 * and damaged, truncated or rewritten files refused with a message naming the file and the tensor.
 */
import { cp, rm, truncate, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type FactorsExpectation, loadCovariance, loadFactors, loadedFactorsBytes } from "../src/ekfac/artifacts.js";
import { runFit } from "../src/jobs/fit.js";
import { inputWidth } from "../src/model/model.js";
import { type OpenedModel, openModel } from "../src/model/open-model.js";
import { SafetensorsReader, readSafetensors, tensorAsFloat32, tensorAsFloat64 } from "../src/safetensors/read.js";
import { type TensorToWrite, encodeSafetensors, writeSafetensors } from "../src/safetensors/write.js";
import { tempDir } from "../src/util/temp-dir.js";
import { fixtureExpected, fixturePath } from "../support/fixtures.js";
import { maxRelError } from "./helpers/compare.js";
import { expectRefused } from "./helpers/refusal.js";

const MODEL = "gpt2-tiny";

let tmp: Awaited<ReturnType<typeof tempDir>>;
let opened: OpenedModel;
let expectation: FactorsExpectation;
const fitDir = () => path.join(tmp.dir, "fit");
const eigenFile = (dir: string) => path.join(dir, "eigendecomposition.safetensors");
const lambdaFile = (dir: string) => path.join(dir, "lambda.safetensors");
const covarianceFile = (dir: string) => path.join(dir, "covariance.safetensors");

beforeAll(async () => {
  tmp = await tempDir("factors-files-");
  opened = await openModel(fixturePath(MODEL));
  expectation = { modelFingerprint: opened.fingerprint, modules: opened.model.modules };
  await runFit({
    opened,
    corpusFile: fixturePath(MODEL, "train.jsonl"),
    outDir: fitDir(),
    fisher: "empirical",
    damping: { rule: "heuristic", factor: 0.1 },
    seed: 0,
  });
}, 120_000);
afterAll(async () => {
  await opened.model.release();
  await tmp.remove();
});

/** Qᵀ M Q for an n×n M and eigenvectors as the columns of Q (row-major), in float64. */
function rotated(q: ArrayLike<number>, m: ArrayLike<number>, n: number): Float64Array {
  const mq = new Float64Array(n * n);
  for (let r = 0; r < n; r++) for (let k = 0; k < n; k++) for (let c = 0; c < n; c++) mq[r * n + c] += m[r * n + k] * q[k * n + c];
  const out = new Float64Array(n * n);
  for (let k = 0; k < n; k++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[i * n + j] += q[k * n + i] * mq[k * n + j];
  return out;
}

describe("factors read a tensor at a time", () => {
  it("are the arrays the files give read whole, bit for bit", async () => {
    const { factors } = await loadFactors(fitDir(), expectation);
    const [eig, lam, cov] = await Promise.all([eigenFile, lambdaFile, covarianceFile].map((f) => readSafetensors(f(fitDir()))));
    expect(factors.map((f) => f.module)).toEqual(opened.model.modules);
    for (const f of factors) {
      const name = f.module.name;
      expect(f.qA, name).toStrictEqual(tensorAsFloat32(eig, `QA.${name}`));
      expect(f.eigA, name).toStrictEqual(tensorAsFloat64(eig, `eigA.${name}`));
      expect(f.qS, name).toStrictEqual(tensorAsFloat32(eig, `QS.${name}`));
      expect(f.eigS, name).toStrictEqual(tensorAsFloat64(eig, `eigS.${name}`));
      expect(f.lambda, name).toStrictEqual(tensorAsFloat32(lam, `Lambda.${name}`));
      expect(f.damping, name).toBe(tensorAsFloat64(lam, `damping.${name}`)[0]);
    }
    for (const { module, A, S } of await loadCovariance(fitDir(), opened.model.modules)) {
      expect(A, module.name).toStrictEqual(tensorAsFloat64(cov, `A.${module.name}`));
      expect(S, module.name).toStrictEqual(tensorAsFloat64(cov, `S.${module.name}`));
    }
  });

  it("diagonalise the reference's A and S, with its damping, 0.1 x the mean of Lambda", async () => {
    const expected = await fixtureExpected(MODEL);
    const { factors } = await loadFactors(fitDir(), expectation);
    const covariance = await loadCovariance(fitDir(), opened.model.modules);
    for (const [m, f] of factors.entries()) {
      const name = f.module.name;
      for (const [factor, q, eigenvalues, n] of [
        ["A", f.qA, f.eigA, inputWidth(f.module)],
        ["S", f.qS, f.eigS, f.module.outFeatures],
      ] as const) {
        const reference = expected(`${factor}.${name}`).data;
        expect(maxRelError(covariance[m][factor], reference), `${factor}.${name}`).toBeLessThan(1e-4);
        // Qᵀ M Q against diag(eigenvalues), M the reference's (independent of this fit).
        const d = rotated(q, reference, n);
        const scale = Math.max(...eigenvalues);
        let [off, diagonal] = [0, 0];
        for (let i = 0; i < n; i++) {
          for (let j = 0; j < n; j++) {
            if (i === j) diagonal = Math.max(diagonal, Math.abs(d[i * n + i] - eigenvalues[i]));
            else off = Math.max(off, Math.abs(d[i * n + j]));
          }
        }
        expect(off / scale, `${factor}.${name}`).toBeLessThan(1e-5);
        expect(diagonal / scale, `${factor}.${name}`).toBeLessThan(1e-5);
      }
      expect(Math.abs(f.damping / expected(`damping.${name}`).data[0] - 1), name).toBeLessThan(1e-3);
      const mean = f.lambda.reduce((s, x) => s + x, 0) / f.lambda.length;
      expect(Math.abs((0.1 * mean) / f.damping - 1), name).toBeLessThan(1e-5);
    }
  });

  it("count, for a memory estimate, every tensor loaded and the largest of them as stored", async () => {
    const stored = opened.model.modules.map((m) => {
      const [i, o] = [inputWidth(m), m.outFeatures];
      // QA, QS and Lambda in float32; eigA, eigS and damping in float64.
      return [4 * i * i, 4 * o * o, 4 * o * i, 8 * i, 8 * o, 8];
    });
    expect(await loadedFactorsBytes(fitDir())).toEqual({
      total: stored.flat().reduce((a, b) => a + b, 0),
      largest: Math.max(...stored.flat()),
    });
  });
});

describe("damaged factors files", () => {
  /** A copy of the fit whose `file` has its tensors changed by `change` (read whole, written again). */
  async function damaged(label: string, file: (dir: string) => string, change: (tensors: Record<string, TensorToWrite>) => void): Promise<string> {
    const dir = path.join(tmp.dir, label);
    await cp(fitDir(), dir, { recursive: true });
    const st = await readSafetensors(file(dir));
    const tensors: Record<string, TensorToWrite> = {};
    for (const [name, info] of st.tensors) tensors[name] = { dtype: info.dtype as TensorToWrite["dtype"], shape: info.shape, data: tensorAsFloat64(st, name) };
    change(tensors);
    await writeSafetensors(file(dir), tensors, st.metadata);
    return dir;
  }

  it("a missing tensor, a wrong shape, a wrong dtype, naming the file and the tensor", async () => {
    const missing = await damaged("missing-tensor", lambdaFile, (t) => delete t["damping.h.1.mlp.c_proj"]);
    await expectRefused(loadFactors(missing, expectation), lambdaFile(missing), /: tensor damping\.h\.1\.mlp\.c_proj is missing$/);
    const shape = await damaged("wrong-shape", eigenFile, (t) => {
      t["eigS.h.0.mlp.c_fc"] = { dtype: "F64", shape: [127], data: new Float64Array(127) };
    });
    await expectRefused(loadFactors(shape, expectation), eigenFile(shape), /: tensor eigS\.h\.0\.mlp\.c_fc has shape \[127\], expected \[128\]$/);
    const dtype = await damaged("wrong-dtype", eigenFile, (t) => {
      t["eigA.h.1.mlp.c_fc"] = { ...t["eigA.h.1.mlp.c_fc"], dtype: "BOOL" };
    });
    await expectRefused(loadFactors(dtype, expectation), eigenFile(dtype), /: tensor eigA\.h\.1\.mlp\.c_fc has dtype BOOL, expected a floating-point type$/);
    const covariance = await damaged("missing-covariance", covarianceFile, (t) => delete t["S.h.0.mlp.c_proj"]);
    await expectRefused(loadCovariance(covariance, opened.model.modules), covarianceFile(covariance), /: tensor S\.h\.0\.mlp\.c_proj is missing$/);
  });

  it("a missing or truncated file", async () => {
    const gone = await damaged("missing-file", eigenFile, () => {});
    await rm(eigenFile(gone));
    await expectRefused(loadFactors(gone, expectation), eigenFile(gone), /: cannot read \(ENOENT\)$/);
    const cut = await damaged("truncated-file", lambdaFile, () => {});
    await truncate(lambdaFile(cut), 4096);
    await expectRefused(
      loadFactors(cut, expectation),
      lambdaFile(cut),
      /: tensor \S+ ends at byte \d+ of the data section, which has only \d+ bytes \(truncated file\?\)$/,
    );
  });

  it.each([
    ["rewritten", (file: string) => writeFile(file, encodeSafetensors({ w: { dtype: "F32", shape: [3], data: [1, 2, 3] } }))],
    ["truncated", (file: string) => truncate(file, 4096)],
  ])("a file %s after it was opened, before its tensors are read", async (label, change) => {
    const dir = await damaged(`${label}-after-open`, lambdaFile, () => {});
    const open = SafetensorsReader.open.bind(SafetensorsReader);
    // The file changes between the reader's open (its header checked) and the reads of its tensors.
    const spy = vi.spyOn(SafetensorsReader, "open").mockImplementation(async (file) => {
      const reader = await open(file);
      if (file === lambdaFile(dir)) await change(file);
      return reader;
    });
    try {
      await expectRefused(
        loadFactors(dir, expectation),
        lambdaFile(dir),
        /: the file changed after it was opened \(\d+ bytes modified .*, now \d+ bytes modified .*\): it was rewritten while being read; load it again$/,
      );
      expect(spy).toHaveBeenCalledTimes(2);
    } finally {
      spy.mockRestore();
    }
  });
});

import { existsSync } from "node:fs";
import path from "node:path";
import express, { type Router } from "express";

/**
 * The web UI's files from `webRoot`: the dashboard at `/` and the playground at `/playground/`.
 * Pages asking for a path that is not a file get the app's index.html (client-side routes).
 */
export function staticSite(webRoot: string): Router {
  const root = path.resolve(webRoot);
  const router = express.Router();
  router.use(express.static(root));
  router.get(/.*/, (req, res, next) => {
    if (!req.accepts("html")) return next();
    const index = req.path.startsWith("/playground/") ? "playground/index.html" : "index.html";
    if (!existsSync(path.join(root, index))) return next();
    res.sendFile(index, { root });
  });
  return router;
}

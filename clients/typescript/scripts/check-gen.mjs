// Fails when src/generated/openapi.ts is not what `npm run gen` makes from
// gen/openapi/openapi.json (run `make gen`, then `npm run gen`), or when the package's major
// version is not the API's (the SDK is versioned with the API).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const spec = process.argv[2] ?? join(root, "..", "..", "gen", "openapi", "openapi.json");
const committed = join(root, "src", "generated", "openapi.ts");
const work = mkdtempSync(join(tmpdir(), "ragline-ts-gen-"));
let failed = false;
try {
  const fresh = join(work, "openapi.ts");
  execFileSync(join(root, "node_modules", ".bin", "openapi-typescript"), [spec, "-o", fresh], { stdio: "pipe" });
  if (readFileSync(fresh, "utf8") !== readFileSync(committed, "utf8")) {
    console.error(`stale ${committed}: run \`npm run gen\` in clients/typescript (after \`make gen\`)`);
    failed = true;
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const api = JSON.parse(readFileSync(spec, "utf8")).info.version;
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
if (api.split(".")[0] !== pkg.split(".")[0]) {
  console.error(`package version ${pkg} does not follow the API's major version (${api})`);
  failed = true;
}
const sdk = readFileSync(join(root, "src", "client.ts"), "utf8").match(/SDK_VERSION = "([^"]+)"/)?.[1];
if (sdk !== pkg) {
  console.error(`SDK_VERSION ${sdk} in src/client.ts differs from package.json's ${pkg}`);
  failed = true;
}
if (failed) process.exit(1);
console.log(`src/generated/openapi.ts is current (API ${api}, SDK ${pkg})`);

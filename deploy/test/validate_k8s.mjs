// Validates rendered Kubernetes manifests offline against the API's OpenAPI schemas (npm package
// kubernetes-models): node validate_k8s.mjs FILE.yaml ... Prints one line per object; exits 1 if
// any object does not validate or has a kind the package does not know.
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";

let failed = false;
for (const file of process.argv.slice(2)) {
  for (const object of loadAll(readFileSync(file, "utf8"))) {
    if (object === null) continue;
    const [group, version] = object.apiVersion.includes("/")
      ? object.apiVersion.split("/")
      : ["", object.apiVersion];
    const module = [group, version, object.kind].filter(Boolean).join("/");
    const name = `${file}: ${object.kind} ${object.metadata?.name}`;
    try {
      const models = await import(`kubernetes-models/${module}`);
      new models[object.kind](object).validate();
      console.log(`valid   ${name}`);
    } catch (error) {
      failed = true;
      console.log(`INVALID ${name}: ${error.message}`);
    }
  }
}
process.exit(failed ? 1 : 0);

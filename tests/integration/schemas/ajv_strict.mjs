// Compiles every tool schema with Ajv in strict mode (the validator most TypeScript MCP hosts
// embed) and checks the examples the Python test hands over. Reads JSON on stdin:
//   [{"name", "schema", "valid": [..], "invalid": [..]}]
// and prints one JSON line per schema: {"name", "compiled", "error"?, "valid_ok": [..], "invalid_ok": [..]}.
import Ajv2020 from "ajv/dist/2020.js";
import { readFileSync } from "node:fs";

const cases = JSON.parse(readFileSync(0, "utf8"));
for (const { name, schema, valid, invalid } of cases) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  let validate;
  try {
    validate = ajv.compile(schema);
  } catch (error) {
    console.log(JSON.stringify({ name, compiled: false, error: String(error.message || error) }));
    continue;
  }
  console.log(JSON.stringify({
    name,
    compiled: true,
    valid_ok: valid.map((example) => validate(example) || ajv.errorsText(validate.errors)),
    invalid_ok: invalid.map((example) => !validate(example)),
  }));
}

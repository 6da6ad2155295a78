// The ESM entry point: index.cjs's own exports (Node reads their names from its
// `module.exports = { … }`), so there is one implementation and one list of names.
export * from "./index.cjs";
export { default } from "./index.cjs";

"""portabind's tooling: the CLI, loading and validating a project, builds, the support matrix
and scaffolding. A deployed function never imports it: builds ship only the runtime part (the
`portabind` modules beside this package, the bindings the components use and the target's
runtime)."""

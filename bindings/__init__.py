"""Binding implementations, one module per Dapr type: `bindings.aws.s3` is
`portabind.bindings.aws.s3`."""

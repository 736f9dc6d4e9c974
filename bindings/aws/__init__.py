"""AWS bindings (`bindings.aws.*`).

`AwsCredentials` is the AWS part of Dapr's authentication profile; bindings of other families
that reach AWS (kafka's `awsiam` authentication against MSK) declare it too.
`StreamAnnotations` are what the stream bindings (kinesis, dynamodb) read, and the AWS build
with them (`startingPosition`, a `StartingPosition`).
"""

from portabind.bindings.aws._aws import AwsCredentials
from portabind.bindings.aws._shards import StartingPosition, StreamAnnotations

__all__ = ["AwsCredentials", "StartingPosition", "StreamAnnotations"]

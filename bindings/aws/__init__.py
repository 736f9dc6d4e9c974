"""AWS bindings (`bindings.aws.*`).

`AwsCredentials` is the AWS part of Dapr's authentication profile; bindings of other families
that reach AWS (kafka's `awsiam` authentication against MSK) declare it too.
"""

from portabind.bindings.aws._aws import AwsCredentials

__all__ = ["AwsCredentials"]

"""Every Lambda trigger the AWS build writes: the `everything` app's template transforms and
lints clean with the right event sources, IAM and retry settings; what Lambda cannot do is
refused at build time, naming the component and the field."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from portabind.adapters.aws import build
from portabind.errors import BuildError, ComponentError
from portabind.secrets import secret_env_name
from portabind.tooling.project import load_project

if TYPE_CHECKING:
    from collections.abc import Callable

EVERYTHING = Path(__file__).resolve().parent / "apps" / "everything"


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("everything")
    build.build(load_project(EVERYTHING), out)
    return out


def sam(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((out / "template.yaml").read_text())
    return document


def test_everything_transforms_and_lints_clean(
    everything: Path,
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
) -> None:
    assert lint_errors(everything) == []
    resources = transformed(everything)["Resources"]
    kinds = {
        "OrdersFunctionSQS": "AWS::Lambda::EventSourceMapping",
        "ClicksFunctionKinesis": "AWS::Lambda::EventSourceMapping",
        "ProfilesFunctionDynamoDB": "AWS::Lambda::EventSourceMapping",
        "PaymentsFunctionSelfManagedKafka": "AWS::Lambda::EventSourceMapping",
        "TelemetryFunctionMSK": "AWS::Lambda::EventSourceMapping",
        "JobsFunctionMQ": "AWS::Lambda::EventSourceMapping",
        "AlertsFunctionSNS": "AWS::SNS::Subscription",
        "ArchiveFunctionEventBridgeRule": "AWS::Events::Rule",
        "NightlyFunctionScheduleV2": "AWS::Scheduler::Schedule",
        "SensorsFunctionIoTRule": "AWS::IoT::TopicRule",
        "ServerlessHttpApi": "AWS::ApiGatewayV2::Api",
        "UploadsBucket": "AWS::S3::Bucket",
    }
    assert {name: resources[name]["Type"] for name in kinds} == kinds
    for batch in ("OrdersFunctionSQS", "ClicksFunctionKinesis", "ProfilesFunctionDynamoDB"):
        assert resources[batch]["Properties"]["FunctionResponseTypes"] == [
            "ReportBatchItemFailures"
        ]
    notification = resources["UploadsBucket"]["Properties"]["NotificationConfiguration"]
    (lambda_config,) = notification["LambdaConfigurations"]
    assert lambda_config["Event"] == "s3:ObjectCreated:*"
    assert lambda_config["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "incoming/"}]
    schedule = resources["NightlyFunctionScheduleV2"]["Properties"]
    assert schedule["ScheduleExpression"] == "cron(30 2 ? * 2-6 *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Paris"
    rule = resources["SensorsFunctionIoTRule"]["Properties"]["TopicRulePayload"]
    assert rule["Sql"] == (
        "SELECT encode(*, 'base64') AS data, topic() AS topic FROM 'sensors/+/temperature'"
    )


def test_every_output_gets_its_least_privilege_policy(
    everything: Path, transformed: Callable[[Path], dict[str, Any]]
) -> None:
    role = transformed(everything)["Resources"]["OrdersFunctionRole"]["Properties"]
    granted = yaml.safe_dump(role["Policies"])
    for action, resource in (
        ("s3:PutObject", "everything-receipts"),
        ("sqs:SendMessage", "everything-outbox"),
        ("sns:Publish", "everything-notices"),
        ("dynamodb:PutItem", "everything-ledger"),
        ("kinesis:PutRecord", "stream/everything-metrics"),
    ):
        assert action in granted and resource in granted
    for broad in ("s3:DeleteBucket", "kinesis:DeleteStream", "dynamodb:DeleteTable"):
        assert broad not in granted


def test_retries_and_dead_letters(everything: Path) -> None:
    resources = sam(everything)["Resources"]
    clicks = resources["ClicksFunction"]["Properties"]["Events"]["Kinesis"]["Properties"]
    assert clicks["BisectBatchOnFunctionError"] is True
    assert clicks["StartingPosition"] == "TRIM_HORIZON"
    # onFailure: dlq creates the queue; the destination has no `Type` (cfn-lint refuses it)
    assert clicks["DestinationConfig"] == {
        "OnFailure": {"Destination": {"Fn::GetAtt": ["ClicksFailureQueue", "Arn"]}}
    }
    assert resources["ClicksFailureQueue"]["Type"] == "AWS::SQS::Queue"
    # the Resiliency document's inbound policy (maxRetries 3) on a stream and on a queue
    profiles = resources["ProfilesFunction"]["Properties"]["Events"]["DynamoDB"]["Properties"]
    assert profiles["MaximumRetryAttempts"] == 3
    orders_queue = resources["OrdersQueue"]["Properties"]
    assert orders_queue["RedrivePolicy"]["maxReceiveCount"] == 4
    # asynchronous sources: the function's EventInvokeConfig
    alerts = resources["AlertsFunction"]["Properties"]["EventInvokeConfig"]
    assert alerts["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": "arn:aws:sqs:us-east-1:123456789012:everything-alerts-failed",
    }
    # a Dapr cron tick is not retried when its handler fails
    assert resources["NightlyFunction"]["Properties"]["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 0
    }


def test_kafka_and_mq_authenticate_with_secret_arns_never_values(everything: Path) -> None:
    resources = sam(everything)["Resources"]
    payments = resources["PaymentsFunction"]["Properties"]
    kafka = payments["Events"]["SelfManagedKafka"]["Properties"]
    assert kafka["KafkaBootstrapServers"] == [
        "kafka-1.example.com:9096",
        "kafka-2.example.com:9096",
    ]
    assert kafka["SourceAccessConfigurations"] == [
        {
            "Type": "SASL_SCRAM_512_AUTH",
            "URI": {
                "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:"
                "${AWS::AccountId}:secret:kafka-credentials"
            },
        },
        {
            "Type": "SERVER_ROOT_CA_CERTIFICATE",
            "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:kafka-ca-AbCdEf",
        },
    ]
    assert kafka["ProvisionedPollerConfig"] == {"MinimumPollers": 1}
    assert payments["Environment"]["Variables"][secret_env_name("payments", "saslPassword")] == (
        "{{resolve:secretsmanager:kafka-credentials:SecretString:password}}"
    )
    msk = resources["TelemetryFunction"]["Properties"]["Events"]["MSK"]["Properties"]
    assert msk["StartingPosition"] == "TRIM_HORIZON"  # initialOffset: oldest
    assert "FunctionResponseTypes" not in msk  # on-demand mode ignores partial replies
    mq = resources["JobsFunction"]["Properties"]["Events"]["MQ"]["Properties"]
    assert mq["Queues"] == ["everything-jobs"]
    assert mq["SourceAccessConfigurations"] == [
        {
            "Type": "BASIC_AUTH",
            "URI": "arn:aws:secretsmanager:us-east-1:123456789012:secret:mq-AbCdEf",
        },
        {"Type": "VIRTUAL_HOST", "URI": "jobs"},
    ]


def test_entry_module_wires_each_trigger(everything: Path) -> None:
    entry = (everything / "portabind_lambda.py").read_text()
    for line in (
        '_handle_orders = function.sqs("orders")',
        '_handle_clicks = function.kinesis("clicks")',
        '_handle_profiles = function.dynamodb("profiles")',
        '_handle_alerts = function.sns("alerts")',
        '_handle_uploads = function.s3("uploads")',
        '_handle_archive = function.s3("archive")',
        '_handle_nightly = function.cron("nightly")',
        '_handle_webhook = function.http("webhook")',
        '_handle_payments = function.kafka("payments", partial_batch=True)',
        '_handle_telemetry = function.kafka("telemetry", partial_batch=False)',
        '_handle_jobs = function.mq("jobs")',
        '_handle_sensors = function.iot("sensors")',
    ):
        assert line in entry


def project(root: Path, component: str, name: str = "source", resiliency: str = "") -> Path:
    (root / "components").mkdir(parents=True)
    documents = textwrap.dedent(component) + (
        "\n---\n" + textwrap.dedent(resiliency) if resiliency else ""
    )
    (root / "components" / "components.yaml").write_text(documents)
    (root / "app.py").write_text(
        f"from portabind import App\n\napp = App()\n\n\n@app.binding({name!r})\n"
        "def handle(event):\n    return None\n"
    )
    return root


def component(
    kind: str, metadata: dict[str, str], annotations: dict[str, str] | None = None
) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {"name": "source", "annotations": annotations or {}},
            "spec": {
                "type": kind,
                "version": "v1",
                "metadata": [{"name": k, "value": v} for k, v in metadata.items()],
            },
        }
    )


CRON = "bindings.cron"
KAFKA = {"brokers": "kafka-1.example.com:9092", "topics": "orders", "authType": "none"}
VPC = {"subnets": "subnet-0a1b, subnet-2c3d", "securityGroups": "sg-0e4f"}
SQS = {"queueName": "q", "region": "us-east-1"}
TWILIO = {"accountSid": "AC1", "authToken": "token", "fromNumber": "+15550001111"}
SNS = {"topicArn": "arn:aws:sns:us-east-1:123456789012:t", "region": "us-east-1"}


@pytest.mark.parametrize(
    ("kind", "metadata", "annotations", "field", "message"),
    [
        (CRON, {"schedule": "30 * * * * *"}, {}, "schedule", "seconds field '30'"),
        (CRON, {"schedule": "@every 30s"}, {}, "schedule", "not a whole number of minutes"),
        (CRON, {"schedule": "0 0 0 1 * MON"}, {}, "schedule", "both restricted"),
        ("bindings.aws.sns", SNS, {}, "portabind.io/trigger", "output-only in Dapr"),
        ("bindings.kafka", {**KAFKA, "topics": "a,b"}, {}, "topics", "exactly one topic"),
        ("bindings.kafka", KAFKA, {}, "authType", "credentials or the brokers' VPC"),
        ("bindings.kafka", KAFKA, {"subnets": "subnet-1"}, "subnets", "both subnets"),
        ("bindings.kafka", {**KAFKA, "authType": "oidc"}, {}, "authType", "no Lambda Kafka"),
        (
            "bindings.kafka",
            {**KAFKA, "authType": "password", "saslMechanism": "SHA-256"},
            {"mskClusterArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/x"},
            "saslMechanism",
            "no MSK event source equivalent",
        ),
        ("bindings.kafka", KAFKA, {**VPC, "maxRetries": "3"}, "", "provisioned mode only"),
        (
            "bindings.kafka",
            KAFKA,
            {**VPC, "provisionedPollers": "1", "onFailure": "dlq"},
            "portabind.io/onFailure",
            "no on-failure destination",
        ),
        (
            "bindings.rabbitmq",
            {"host": "amqp://h", "queueName": "q"},
            {},
            "portabind.io/brokerArn",
            "Amazon MQ broker",
        ),
        ("bindings.aws.sns", SNS, {"trigger": "true", "maxRetries": "5"}, "", "0 to 2 times"),
        ("bindings.aws.sns", SNS, {"trigger": "true", "bisectOnError": "true"}, "", "stream"),
        ("bindings.aws.sqs", SQS, {"existing": "true", "maxRetries": "2"}, "", "on the queue"),
        ("bindings.aws.sqs", SQS, {"onFailure": "sns-topic"}, "", "an arn:aws:sqs:… ARN or 'dlq'"),
        (
            "bindings.aws.dynamodb",
            {"table": "t", "region": "us-east-1"},
            {"trigger": "true", "existing": "true"},
            "portabind.io/streamArn",
            "stream ARN",
        ),
        (
            "bindings.http",
            {"url": "https://x"},
            {"trigger": "true", "maxRetries": "1"},
            "",
            "synchronous",
        ),
    ],
)
def test_what_lambda_cannot_do_is_refused(
    tmp_path: Path,
    kind: str,
    metadata: dict[str, str],
    annotations: dict[str, str],
    field: str,
    message: str,
) -> None:
    root = project(
        tmp_path / "p",
        component(kind, metadata, {f"portabind.io/{k}": v for k, v in annotations.items()}),
    )
    with pytest.raises(ComponentError, match=message) as raised:
        build.build(load_project(root), tmp_path / "out")
    assert raised.value.component == "source"
    assert field in (raised.value.field or "")
    assert not (tmp_path / "out").exists()


def test_self_managed_kafka_in_a_vpc(
    tmp_path: Path, lint_errors: Callable[[Path], list[str]]
) -> None:
    annotations = {f"portabind.io/{k}": v for k, v in VPC.items()}
    root = project(tmp_path / "p", component("bindings.kafka", KAFKA, annotations))
    build.build(load_project(root), tmp_path / "out")
    events = sam(tmp_path / "out")["Resources"]["SourceFunction"]["Properties"]["Events"]
    assert events["SelfManagedKafka"]["Properties"]["SourceAccessConfigurations"] == [
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-0a1b"},
        {"Type": "VPC_SUBNET", "URI": "subnet:subnet-2c3d"},
        {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0e4f"},
    ]
    assert lint_errors(tmp_path / "out") == []


def default_policy(name: str, max_retries: int) -> str:
    """A Resiliency document defining only Dapr's default retry policy `name`."""
    return yaml.safe_dump(
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Resiliency",
            "metadata": {"name": "defaults"},
            "spec": {"policies": {"retries": {name: {"maxRetries": max_retries}}}},
        }
    )


def test_default_resiliency_policy_applies_to_streams(tmp_path: Path) -> None:
    root = project(
        tmp_path / "p",
        component("bindings.aws.kinesis", {"streamName": "s", "region": "us-east-1"}),
        resiliency=default_policy("DefaultBindingComponentInboundRetryPolicy", 7),
    )
    build.build(load_project(root), tmp_path / "out")
    event = sam(tmp_path / "out")["Resources"]["SourceFunction"]["Properties"]["Events"]
    assert event["Kinesis"]["Properties"]["MaximumRetryAttempts"] == 7


def test_default_resiliency_policy_fits_each_trigger(tmp_path: Path) -> None:
    """A default policy reaches every component: asynchronous triggers get Lambda's most (2
    retries), triggers without retry settings (HTTP) build as they are."""
    root = project(
        tmp_path / "p",
        component("bindings.aws.sns", SNS, {"portabind.io/trigger": "true"}),
        resiliency=default_policy("DefaultRetryPolicy", -1),
    )
    with (root / "components" / "components.yaml").open("a") as file:
        file.write(
            "---\n"
            + component(
                "bindings.http", {"url": "https://x"}, {"portabind.io/trigger": "true"}
            ).replace("name: source", "name: hook")
        )
    (root / "app.py").write_text(
        (root / "app.py").read_text()
        + "\n\n@app.binding('hook')\ndef hook(event):\n    return None\n"
    )
    build.build(load_project(root), tmp_path / "out")
    resources = sam(tmp_path / "out")["Resources"]
    assert resources["SourceFunction"]["Properties"]["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2
    }
    assert "EventInvokeConfig" not in resources["HookFunction"]["Properties"]


def test_input_without_a_trigger_names_its_alternative(tmp_path: Path) -> None:
    root = project(tmp_path / "p", component("bindings.kubernetes", {"namespace": "default"}))
    with pytest.raises(BuildError, match="no AWS Lambda trigger") as raised:
        build.build(load_project(root), tmp_path / "out")
    assert "a Dapr sidecar in the cluster" in str(raised.value)


def test_support_matrix_lists_every_trigger_and_fallback() -> None:
    from portabind.tooling.matrix import Row, render, support_matrix

    rows = {row.type: row for row in support_matrix()}
    for trigger in build.TARGET.triggers:
        assert rows[trigger.binding_type].triggers["aws"] == trigger.native
    assert "none: use a Dapr sidecar in the cluster" in render(support_matrix())  # kubernetes
    output_only = Row(
        type="bindings.example",
        input=False,
        output=True,
        operations=("create",),
        triggers={"aws": "SNS (extension)", "azure": "", "gcp": ""},
        fallbacks={"aws": "", "azure": "", "gcp": ""},
    )
    assert "client; trigger SNS (extension)  client" in render([output_only])


def test_validation_accepts_a_handler_on_an_output_only_type_only_when_opted_in(
    tmp_path: Path,
) -> None:
    from portabind.tooling.project import check_project

    # bindings.aws.sns is output-only in Dapr: the annotation opts into its Lambda trigger
    opted_in = project(
        tmp_path / "yes",
        component("bindings.aws.sns", SNS, {"portabind.io/trigger": "true"}),
    )
    check_project(load_project(opted_in), resolve_secrets=False)
    plain = project(
        tmp_path / "no",
        component(
            "bindings.twilio.sms",
            TWILIO,
        ),
    )
    with pytest.raises(ComponentError, match="output-only") as raised:
        check_project(load_project(plain), resolve_secrets=False)
    assert "portabind.io/trigger" in str(raised.value)


@pytest.mark.parametrize(
    ("operations", "templates"),
    [
        (None, ["S3CrudPolicy"]),
        ("get, list,presign", ["S3ReadPolicy"]),
        ("create,bulkCreate", ["S3WritePolicy"]),
        ("get,create", ["S3ReadPolicy", "S3WritePolicy"]),
        ("get,delete", ["S3CrudPolicy"]),
    ],
)
def test_s3_policy_narrows_to_the_operations_the_app_calls(
    tmp_path: Path,
    operations: str | None,
    templates: list[str],
    transformed: Callable[[Path], dict[str, Any]],
) -> None:
    annotations = {"portabind.io/operations": operations} if operations else {}
    root = project(tmp_path / "p", component("bindings.aws.sqs", SQS))
    with (root / "components" / "components.yaml").open("a") as file:
        s3 = component("bindings.aws.s3", {"bucket": "b-1", "region": "us-east-1"}, annotations)
        file.write("---\n" + s3.replace("name: source", "name: files"))
    build.build(load_project(root), tmp_path / "out")
    policies = sam(tmp_path / "out")["Resources"]["SourceFunction"]["Properties"]["Policies"]
    assert [next(iter(p)) for p in policies if "BucketName" in next(iter(p.values()))] == templates
    granted = yaml.safe_dump(transformed(tmp_path / "out")["Resources"]["SourceFunctionRole"])
    assert ("s3:DeleteObject" in granted) == (templates == ["S3CrudPolicy"])
    assert ("s3:PutObject" in granted) == ("S3ReadPolicy" not in templates or len(templates) > 1)


def test_s3_operations_must_be_the_bindings_own(tmp_path: Path) -> None:
    root = project(tmp_path / "p", component("bindings.aws.sqs", SQS))
    with (root / "components" / "components.yaml").open("a") as file:
        s3 = component(
            "bindings.aws.s3",
            {"bucket": "b-1", "region": "us-east-1"},
            {"portabind.io/operations": "get,upload"},
        )
        file.write("---\n" + s3.replace("name: source", "name: files"))
    with pytest.raises(ComponentError, match="item 2: must be one of create, get") as raised:
        build.build(load_project(root), tmp_path / "out")
    assert raised.value.component == "files"


def test_kinesis_extended_mode_reads_through_an_enhanced_fan_out_consumer(
    tmp_path: Path,
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
) -> None:
    metadata = {"streamName": "clicks", "consumerName": "reader", "mode": "extended"}
    root = project(
        tmp_path / "p", component("bindings.aws.kinesis", {**metadata, "region": "eu-west-1"})
    )
    build.build(load_project(root), tmp_path / "out")
    assert lint_errors(tmp_path / "out") == []
    resources = transformed(tmp_path / "out")["Resources"]
    assert resources["SourceConsumer"]["Properties"] == {
        "ConsumerName": "reader",
        "StreamARN": {"Fn::GetAtt": ["SourceStream", "Arn"]},
    }
    mapping = resources["SourceFunctionKinesis"]["Properties"]
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["SourceConsumer", "ConsumerARN"]}


def test_dapr_alias_bindings_mqtt_builds_the_iot_rule(tmp_path: Path) -> None:
    metadata = {"url": "ssl://iot.example.com:8883", "topic": "a/b", "consumerID": "c"}
    root = project(tmp_path / "p", component("bindings.mqtt", metadata))
    build.build(load_project(root), tmp_path / "out")
    events = sam(tmp_path / "out")["Resources"]["SourceFunction"]["Properties"]["Events"]
    assert events["IoTRule"]["Properties"]["Sql"].endswith("FROM 'a/b'")
    assert (tmp_path / "out" / "portabind" / "bindings" / "mqtt3.py").is_file()


MSK_CLUSTER = (
    "arn:aws:kafka:us-east-1:123456789012:cluster/events/abcd1234-ab12-cd34-ef56-abcdef123456-1"
)


@pytest.mark.parametrize(("group", "group_arn"), [("readers", "readers"), (None, "*")])
def test_msk_with_iam_auth_grants_the_function_the_cluster_topic_and_group(
    tmp_path: Path,
    transformed: Callable[[Path], dict[str, Any]],
    lint_errors: Callable[[Path], list[str]],
    group: str | None,
    group_arn: str,
) -> None:
    """authType awsiam: no SourceAccessConfigurations (Lambda signs in with its role), and
    the role may connect, read the topic and use the consumer group."""
    metadata = {**KAFKA, "authType": "awsiam", "region": "us-east-1", "publishTopic": "receipts"}
    if group:
        metadata["consumerGroup"] = group
    root = project(
        tmp_path / "app",
        component("bindings.kafka", metadata, {"portabind.io/mskClusterArn": MSK_CLUSTER}),
    )
    out = tmp_path / "out"
    build.build(load_project(root), out)
    assert lint_errors(out) == []
    resources = transformed(out)["Resources"]
    event = resources["SourceFunctionMSK"]["Properties"]
    assert event["EventSourceArn"] == MSK_CLUSTER
    assert "SourceAccessConfigurations" not in event
    statements = [
        statement
        for policy in resources["SourceFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    scope = "arn:aws:kafka:us-east-1:123456789012:{}/events/abcd1234-ab12-cd34-ef56-abcdef123456-1"
    actions: dict[str, set[str]] = {}
    for statement in statements:
        actions.setdefault(statement["Resource"], set()).update(statement["Action"])
    granted = {resource: sorted(allowed) for resource, allowed in actions.items()}
    assert granted[MSK_CLUSTER] == [
        "kafka-cluster:Connect",
        "kafka-cluster:DescribeClusterDynamicConfiguration",
    ]
    assert granted[scope.format("topic") + "/orders"] == [
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:ReadData",
    ]
    assert granted[scope.format("group") + f"/{group_arn}"] == [
        "kafka-cluster:AlterGroup",
        "kafka-cluster:DescribeGroup",
    ]
    # the component is an output too: the function may write to its publishTopic
    assert granted[scope.format("topic") + "/receipts"] == [
        "kafka-cluster:DescribeTopic",
        "kafka-cluster:WriteData",
    ]

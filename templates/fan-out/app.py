"""Fan-out: each order on `orders` is split into one message per line item, published to
`items` (an SNS topic, a Service Bus queue, a Pub/Sub topic) for whoever subscribes.

If publishing fails half-way the order fails and is delivered again, so subscribers may see an
item twice: each message carries `orderId` and `line` so that they can drop repeats.
"""

from pydantic import BaseModel

from portabind import App, Output

app = App()


class Item(BaseModel):
    sku: str
    qty: int = 1


class Order(BaseModel):
    id: int
    items: list[Item]


@app.binding("orders")
def on_order(order: Order, items: Output) -> None:
    for line, item in enumerate(order.items, start=1):
        items.invoke("create", data={"orderId": order.id, "line": line, **item.model_dump()})

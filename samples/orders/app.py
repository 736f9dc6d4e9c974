"""Orders: a queue delivers orders, the handler writes a receipt to a bucket.

The same file runs on AWS (SQS → S3), Azure (Storage Queue → Blob Storage), GCP
(Pub/Sub → Cloud Storage) and locally; only the components directory changes.
"""

from pydantic import BaseModel

from portabind import App, Output

app = App()


class Order(BaseModel):
    id: int
    item: str = ""
    qty: int = 1


@app.binding("orders")
def on_order(order: Order, receipts: Output) -> None:
    receipt = {"order": order.id, "item": order.item, "qty": order.qty, "status": "accepted"}
    receipts.invoke("create", data=receipt, metadata={"key": f"receipts/{order.id}.json"})

"""A scheduled job: each tick of `nightly` writes a report named after the tick's time.

A cron event has no payload; its metadata holds `readTimeUTC` (when the tick fired, RFC 3339)
on every target. A tick that fails is not retried (as in Dapr): the next tick runs as usual.
"""

from portabind import App, BindingEvent, Output

app = App()


@app.binding("nightly")
def on_tick(event: BindingEvent, reports: Output) -> None:
    fired_at = event.metadata["readTimeUTC"]
    day = fired_at[:10]
    report = {"day": day, "generatedAt": fired_at, "status": "ok"}
    reports.invoke("create", data=report, metadata={"key": f"reports/{day}.json"})

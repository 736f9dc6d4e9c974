"""A queue worker: each message on `jobs` is processed and its result stored in `results`.

Run it locally with no cloud account:
    portabind run . --components components/aws --emulate --send 'jobs={"id": "a1", "n": 7}'
Build it for a cloud:
    portabind build . --components components/aws --target aws --out build/aws
"""

from portabind import App, BindingEvent, Output

app = App()


@app.binding("jobs")
def on_job(event: BindingEvent, results: Output) -> None:
    job = event.json()
    squared = {"id": job["id"], "result": job["n"] ** 2}
    results.invoke("create", data=squared, metadata={"key": f"results/{job['id']}.json"})

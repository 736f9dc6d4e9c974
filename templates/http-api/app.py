"""An HTTP API: `POST /notes` stores the JSON note it receives in `notes` and answers with
where it went.

The return value is the response body (a dict is JSON). A body that is not a valid note is
refused with 500 by the platform; validate at the edge if you want 400s.
"""

import uuid

from pydantic import BaseModel

from portabind import App, Output

app = App()


class Note(BaseModel):
    title: str
    body: str = ""


@app.binding("api")
def create_note(note: Note, notes: Output) -> dict[str, str]:
    key = f"notes/{uuid.uuid4()}.json"
    notes.invoke("create", data=note.model_dump(), metadata={"key": key})
    return {"key": key}

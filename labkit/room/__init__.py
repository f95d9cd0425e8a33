"""The instructor's room: `class.serve` collects students' doctor and verify reports into a live page.

    schema.py   what a report must look like (JSON Schema) and the room's columns
    store.py    the class directory: its code and token, and every report in SQLite (WAL)
    app.py      the web app (Starlette): the page, the report API, exports
    client.py   the student's side: join record, sending, the on-disk queue
"""

"""HTTP API and one web page over saved models (FastAPI + uvicorn, the ``serve`` extra).

    recur serve DIR [NAME=DIR ...] [--host 127.0.0.1] [--port 8000] [limits]

``recur.serve.app.create_app(load_models([...]))`` builds the app; tasks plug in through
``recur.serve.handlers`` (a ``TaskHandler`` per checkpoint task name). docs/serving.md has
the routes, the limits and how a task registers its handler.
"""

"""Settings gunicorn reads from the working directory whenever it serves `wsgi:app` here
(`make serve`, the benchmark, the fault tests). Workers and threads come from the command line.

The `Server` header names the API, not the server software behind it."""
import gunicorn.http.wsgi

gunicorn.http.wsgi.SERVER = "occh"

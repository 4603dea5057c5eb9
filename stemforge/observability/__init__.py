"""What the service tells operators: metrics (Prometheus, through Ray's metrics API) and one
structured log line per job event, both fed by the same observer calls from the job lifecycle,
the callback delivery and storage. Nothing here changes what a job does."""

"""Reprocessing beside the rules: replay (the consumer group's offsets moved back), rebuild (the
input topics re-decided into an empty database, checked against the changelog) and restore (the
state the changelog implies, written into an empty database). The pure parts (the changelog
read back, the rebuild's order and runs, the differences, the restored state) and the
orchestration (reading the topics, re-deciding through the handlers, writing the target) live
here; the commands in `service.entrypoints` parse and render."""

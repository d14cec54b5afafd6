"""The service's configuration: the settings and where they come from (the environment, `_FILE`
variables), what a database URL may be, Kafka security, and keeping secrets out of output.
Imports nothing of the service but its core, so every layer may read it."""

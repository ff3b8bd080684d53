"""The only place that issues SQL: engine set-up, schema, repositories."""

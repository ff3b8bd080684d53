"""Safe feed parsing: entity pre-filter, killable parse workers, text and link hygiene.

Modules: `safety` (refuse entity declarations before any parser runs), `entries` (one document ->
plain entries -> `Item`s), `text` (HTML to bounded plain text), `links` (http(s) only, Google
redirectors unwrapped), `parsepool` (worker processes with time and memory limits) and `worker`
(the worker process itself). Nothing here is imported by `veille` at start-up; feedparser is only
imported where a document is parsed.
"""

"""Runtimes: the shared vocabulary and seams (`base`), the error tree (`errors`), and the models
that answer chat requests, one room each: `local/` (in process), `remote/` (over HTTP),
`testing/` (doubles); `textprotocol/` is the text tool protocol they share."""

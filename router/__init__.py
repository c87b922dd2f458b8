"""The router: every model request passes here and is sent to an allowed target."""

"""The BentoML scoring service, request/response schemas, auth, model loading."""

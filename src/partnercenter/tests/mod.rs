//! Tests of the Partner Center / ARM clients against a scripted local HTTP server.

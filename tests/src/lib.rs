//! cross-service scenarios

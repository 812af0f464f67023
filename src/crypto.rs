//! Cluster secrets: certificates and the confd HMAC key.

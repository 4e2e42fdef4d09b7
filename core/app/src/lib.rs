//! keel-app

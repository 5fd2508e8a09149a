//! [`LiveConfig`]: the running configuration, replaced whole on SIGHUP.

use std::sync::{Arc, RwLock};

use super::Config;

/// The configuration every task reads; a reload swaps in a new one at once.
pub struct LiveConfig(RwLock<Arc<Config>>);

impl LiveConfig {
    pub fn new(config: Config) -> LiveConfig {
        LiveConfig(RwLock::new(Arc::new(config)))
    }

    /// The configuration as it is now.
    pub fn get(&self) -> Arc<Config> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, config: Config) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
    }
}

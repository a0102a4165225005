//! Readiness shared by the HTTP `/readyz` endpoint and the gRPC health service.

use std::{collections::BTreeMap, sync::Mutex};

/// Named readiness conditions; the process is ready when all of them are.
#[derive(Debug, Default)]
pub struct Readiness {
    conditions: Mutex<BTreeMap<&'static str, Option<String>>>,
}

impl Readiness {
    /// Marks `component` ready.
    pub fn set_ready(&self, component: &'static str) {
        self.lock().insert(component, None);
    }

    /// Marks `component` not ready, with the reason shown by `/readyz`.
    pub fn set_not_ready(&self, component: &'static str, reason: impl Into<String>) {
        self.lock().insert(component, Some(reason.into()));
    }

    /// Returns `Ok` when every component is ready, else the reasons of those that are not.
    /// With no component registered yet, the process is not ready.
    pub fn check(&self) -> Result<(), String> {
        let conditions = self.lock();
        if conditions.is_empty() {
            return Err("starting".into());
        }
        let reasons: Vec<String> = conditions
            .iter()
            .filter_map(|(name, reason)| reason.as_ref().map(|r| format!("{name}: {r}")))
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons.join("; "))
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<&'static str, Option<String>>> {
        // A poisoned lock only means a panic elsewhere; the map itself stays consistent.
        self.conditions.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_component_is() {
        let readiness = Readiness::default();
        assert!(readiness.check().is_err());
        readiness.set_ready("store");
        readiness.set_not_ready("consumer", "database unreachable");
        assert_eq!(
            readiness.check().unwrap_err(),
            "consumer: database unreachable"
        );
        readiness.set_ready("consumer");
        assert!(readiness.check().is_ok());
    }
}

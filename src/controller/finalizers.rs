//! What a finalizer-guarded reconcile's result means for the controller.

use super::Error;
use kube::runtime::controller::Action;
use kube::runtime::finalizer;

/// The reconcile's own result, or: a finalizer patch that raced the cache is not an error (422:
/// the patch tested the finalizers the cache held; the watch event of our previous write
/// re-triggers the object).
pub fn settle(result: Result<Action, finalizer::Error<Error>>) -> Result<Action, Error> {
    match result {
        Ok(action) => Ok(action),
        Err(
            finalizer::Error::AddFinalizer(kube::Error::Api(s))
            | finalizer::Error::RemoveFinalizer(kube::Error::Api(s)),
        ) if s.code == 422 => {
            tracing::debug!(message = %s.message, "finalizer patch raced the cache; waiting for the watch");
            Ok(Action::await_change())
        }
        Err(finalizer::Error::ApplyFailed(e) | finalizer::Error::CleanupFailed(e)) => Err(e),
        Err(other) => Err(Error::Finalizer(other.to_string())),
    }
}

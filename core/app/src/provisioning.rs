//! Provisioning intents: every change of a service's status that a provisioner must carry
//! out (`create`, `suspend`, `unsuspend`, `terminate`) is recorded as a job in the
//! `provision` queue, in the transaction that changed the status. A leaf module: it writes
//! side-effect rows and imports no use case. The provisioner issue adds the workers; until
//! then the jobs wait there, visible in `keel jobs list`.

use crate::{App, AppError};
use keel_domain::ids::ServiceId;
use keel_store::jobs::{self, NewJob};
use serde_json::json;

/// The queue of provisioning intents.
pub const PROVISION_QUEUE: &str = "provision";
/// The job kind of a provisioning intent (`{service, action}`).
pub const PROVISION: &str = "service.provision";

/// Records the intent to carry a status change out at the provisioner as a job, once per
/// `cause` (the job's unique key is `provision:{service}:{action}:{cause}`).
pub async fn intend(
    tx: &mut keel_store::Tx,
    app: &App,
    service: ServiceId,
    action: &str,
    cause: &str,
) -> Result<(), AppError> {
    let now = app.now();
    jobs::enqueue(
        tx,
        &NewJob::new(
            PROVISION,
            json!({ "service": service, "action": action }),
            now,
        )
        .queue(PROVISION_QUEUE)
        .unique(format!("provision:{service}:{action}:{cause}")),
        now,
    )
    .await?;
    Ok(())
}

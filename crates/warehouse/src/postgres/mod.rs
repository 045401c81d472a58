//! postgres connector (to be built).

use std::sync::Arc;

use crate::{Connector, SecretMaterial, SourceSettings, WarehouseError};

pub(crate) fn connect(
    _settings: &SourceSettings,
    _secret: SecretMaterial,
) -> Result<Arc<dyn Connector>, WarehouseError> {
    Err(WarehouseError::Settings {
        key: "kind".into(),
        reason: "the postgres connector is not built yet".into(),
    })
}

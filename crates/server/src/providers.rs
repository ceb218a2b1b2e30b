//! The provider kinds this gateway knows: the one place that names them. Each crate reads its
//! own `[providers.NAME]` section, builds its endpoints and handles its webhooks
//! (`docs/adding-a-provider.md`).

use switchboard_core::provider::ProviderKind;

/// Every provider kind, by the value of `kind` in a `[providers.NAME]` section.
const KINDS: &[&(dyn ProviderKind + 'static)] = &[
    &switchboard_meta::Meta,
    &switchboard_kaleyra::Kaleyra,
    &switchboard_generic::Generic,
];

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static dyn ProviderKind> {
    KINDS.iter().copied().find(|kind| kind.name() == name)
}

/// Every kind's name, in registry order.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|kind| kind.name()).collect()
}

//! cascade-reco

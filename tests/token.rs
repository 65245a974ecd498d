//! Black-box tests of bearer tokens: berth's issuer and the verifier for
//! tokens of an external token server (keys from a certificate bundle or a
//! JWKS file), per the Docker token spec and registry:2's checks.
#![allow(clippy::unwrap_used)]

mod token {
    pub mod external;
    pub mod issuer;
    pub mod support;
}

//! Image clients over TLS, verifying berth's certificate with the CA from
//! `berth cert` (no tls-verify=false anywhere): skopeo, podman, docker.

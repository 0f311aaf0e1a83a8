//! Service account tokens, as upstream's `serviceaccount` token generator and validator and
//! its `TokenRequest` storage: `POST …/serviceaccounts/<name>/token` issues a JWT signed with
//! the cluster's service-account key (ES256), bound to the account and optionally to a Pod,
//! Secret or Node, with an expiry; a request bearing such a token is authenticated as
//! `system:serviceaccount:<namespace>:<name>` in the groups `system:serviceaccounts` and
//! `system:serviceaccounts:<namespace>`, for as long as the token is unexpired and the account
//! (and the bound object) still exist with the UIDs the token names.

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::meta::{object, ApiError};
use crate::registry::{FieldError, Registry, ResourceInfo};
use crate::tls::User;
use k8s_openapi::api::authentication::v1::TokenRequest;

/// What a TokenRequest body is decoded as.
static TOKEN_REQUEST: ResourceInfo = ResourceInfo {
    group: "authentication.k8s.io",
    version: "v1",
    kind: "TokenRequest",
    plural: "tokenrequests",
    singular: "tokenrequest",
    short_names: &[],
    categories: &[],
    namespaced: true,
    subresources: &[],
};

/// The issuer and audience when none is configured (upstream's defaults as kubeadm sets them).
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The lifetime of a token whose request names none (upstream's one hour).
const DEFAULT_EXPIRATION_SECONDS: i64 = 3600;
/// The shortest lifetime a request may ask for.
const MIN_EXPIRATION_SECONDS: i64 = 600;
/// The longest (2^32 seconds).
const MAX_EXPIRATION_SECONDS: i64 = 1 << 32;

/// The private claims upstream puts under `kubernetes.io`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Private {
    namespace: String,
    serviceaccount: Ref,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    secret: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    node: Option<Ref>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ref {
    name: String,
    uid: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Claims {
    aud: Vec<String>,
    exp: i64,
    iat: i64,
    iss: String,
    jti: String,
    #[serde(rename = "kubernetes.io")]
    kubernetes: Private,
    nbf: i64,
    sub: String,
}

/// Why the token machinery could not start.
#[derive(Debug, thiserror::Error)]
pub enum TokenKeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable ECDSA P-256 key: {source}")]
    Key {
        path: String,
        #[source]
        source: jsonwebtoken::errors::Error,
    },
}

/// The issuer's keys and names.
pub struct Tokens {
    issuer: String,
    audiences: Vec<String>,
    /// `None`: this server verifies tokens but issues none (no signing key configured), and
    /// the `token` subresource answers 404 as upstream's is not installed.
    signing: Option<EncodingKey>,
    verifying: Option<DecodingKey>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("issues", &self.signing.is_some())
            .field("verifies", &self.verifying.is_some())
            .finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TokenKeyError> {
    std::fs::read(path).map_err(|source| TokenKeyError::Read {
        path: path.display().to_string(),
        source,
    })
}

impl Tokens {
    /// Neither issues nor accepts tokens.
    pub fn disabled() -> Tokens {
        Tokens {
            issuer: DEFAULT_ISSUER.to_string(),
            audiences: vec![DEFAULT_ISSUER.to_string()],
            signing: None,
            verifying: None,
        }
    }

    /// Loads the public key that verifies (`--service-account-key-file`) and the private key
    /// that signs (`--service-account-signing-key-file`), both PEM.
    pub fn load(
        public: Option<&Path>,
        private: Option<&Path>,
        issuer: &str,
        audiences: &[String],
    ) -> Result<Tokens, TokenKeyError> {
        let key_error = |path: &Path| {
            let path = path.display().to_string();
            move |source| TokenKeyError::Key { path, source }
        };
        let verifying = public
            .map(|p| DecodingKey::from_ec_pem(&read(p)?).map_err(key_error(p)))
            .transpose()?;
        let signing = private
            .map(|p| EncodingKey::from_ec_pem(&read(p)?).map_err(key_error(p)))
            .transpose()?;
        let audiences = if audiences.is_empty() {
            vec![issuer.to_string()]
        } else {
            audiences.to_vec()
        };
        Ok(Tokens {
            issuer: issuer.to_string(),
            audiences,
            signing,
            verifying,
        })
    }

    pub fn issues(&self) -> bool {
        self.signing.is_some()
    }

    fn sign(&self, claims: &Claims) -> Result<String, ApiError> {
        let key = self.signing.as_ref().ok_or_else(ApiError::path_not_found)?;
        jsonwebtoken::encode(&Header::new(Algorithm::ES256), claims, key)
            .map_err(|e| ApiError::internal(format!("failed to sign the token: {e}")))
    }

    #[cfg(test)]
    fn verify(&self, token: &str) -> Option<Claims> {
        self.verify_for(token, &self.audiences)
    }

    /// The claims of a token this server signed, if its signature, its issuer, its lifetime
    /// and one of its audiences (one of `audiences`) hold.
    fn verify_for(&self, token: &str, audiences: &[String]) -> Option<Claims> {
        let key = self.verifying.as_ref()?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        jsonwebtoken::decode::<Claims>(token, key, &validation)
            .ok()
            .map(|data| data.claims)
    }

    /// The user a bearer token stands for: the account must still exist with the UID the
    /// token names, and so must the object it is bound to (not being deleted), as the watch
    /// caches see them (so a request costs no storage read; a deletion counts once the cache
    /// has seen it, milliseconds later).
    pub async fn authenticate(&self, registry: &Registry, token: &str) -> Option<User> {
        self.authenticate_for(registry, token, &self.audiences)
            .await
            .map(|(user, _)| user)
    }

    /// The audiences this server accepts tokens for.
    pub fn audiences(&self) -> &[String] {
        &self.audiences
    }

    /// [`Tokens::authenticate`] for a token meant for one of `audiences` (a TokenReview's),
    /// with the audiences it was found valid for.
    pub async fn authenticate_for(
        &self,
        registry: &Registry,
        token: &str,
        audiences: &[String],
    ) -> Option<(User, Vec<String>)> {
        let claims = self.verify_for(token, audiences)?;
        let valid_for: Vec<String> = audiences
            .iter()
            .filter(|a| claims.aud.contains(a))
            .cloned()
            .collect();
        let private = &claims.kubernetes;
        let ns = private.namespace.as_str();
        let alive = |obj: &Value, uid: &str| {
            object::uid(obj) == uid && obj["metadata"]["deletionTimestamp"].is_null()
        };
        let account = registry
            .get("", "serviceaccounts")?
            .get_cached(ns, &private.serviceaccount.name)
            .await
            .ok()?;
        if !alive(&account, &private.serviceaccount.uid) {
            return None;
        }
        // A Pod-bound token names its Pod's node for information only; a token bound to a
        // Node needs the Node.
        let node_bound = private.pod.is_none() && private.secret.is_none();
        let node = private.node.as_ref().filter(|_| node_bound).cloned();
        for (plural, bound, namespace) in [
            ("pods", &private.pod, ns),
            ("secrets", &private.secret, ns),
            ("nodes", &node, ""),
        ] {
            if let Some(bound) = bound {
                let obj = registry
                    .get("", plural)?
                    .get_cached(namespace, &bound.name)
                    .await
                    .ok()?;
                if !alive(&obj, &bound.uid) {
                    return None;
                }
            }
        }
        // Upstream's `ServiceAccountInfo.UserInfo`: the account's UID, and in `extra` the
        // token's ID and the Pod (and its node) it is bound to.
        let mut extra = std::collections::BTreeMap::new();
        let key = |k: &str| format!("authentication.kubernetes.io/{k}");
        if let Some(pod) = &private.pod {
            extra.insert(key("pod-name"), vec![pod.name.clone()]);
            extra.insert(key("pod-uid"), vec![pod.uid.clone()]);
        }
        if !claims.jti.is_empty() {
            extra.insert(key("credential-id"), vec![format!("JTI={}", claims.jti)]);
        }
        if let Some(node) = &private.node {
            extra.insert(key("node-name"), vec![node.name.clone()]);
            extra.insert(key("node-uid"), vec![node.uid.clone()]);
        }
        let user = User {
            name: format!("system:serviceaccount:{ns}:{}", private.serviceaccount.name),
            groups: vec![
                "system:serviceaccounts".to_string(),
                format!("system:serviceaccounts:{ns}"),
            ],
            uid: private.serviceaccount.uid.clone(),
            extra,
        };
        Some((user, valid_for))
    }

    /// Answers a TokenRequest for `account` (upstream `TokenREST.Create`): the request's
    /// defaults filled in, its bound object checked, and a signed token in its status.
    pub async fn request(
        &self,
        registry: &Registry,
        account: &Value,
        mut request: Value,
    ) -> Result<Value, ApiError> {
        if !self.issues() {
            return Err(ApiError::path_not_found());
        }
        let ns = object::namespace(account).to_string();
        let name = object::name(account).to_string();
        // Typed once, so a field of the wrong type fails as upstream's decoder fails it; the
        // status is the server's to write, and a missing spec is an empty one.
        if let Some(fields) = request.as_object_mut() {
            fields.remove("status");
            if !fields.get("spec").is_some_and(Value::is_object) {
                fields.insert("spec".into(), json!({}));
            }
        }
        let mut request =
            crate::registry::decode::decode_as::<TokenRequest>(&TOKEN_REQUEST, request)?.object;
        match request["metadata"]["name"].as_str() {
            None | Some("") => request["metadata"]["name"] = json!(name),
            Some(given) if given != name => {
                return Err(ApiError::bad_request(
                    "name in URL does not match name in TokenRequest body",
                ))
            }
            Some(_) => {}
        }
        match request["metadata"]["namespace"].as_str() {
            None | Some("") => request["metadata"]["namespace"] = json!(ns),
            Some(given) if given != ns => {
                return Err(ApiError::bad_request(
                    "namespace in URL does not match namespace in TokenRequest body",
                ))
            }
            Some(_) => {}
        }
        let spec = &mut request["spec"];
        if !spec.is_object() {
            *spec = json!({});
        }
        if spec["expirationSeconds"].is_null() {
            spec["expirationSeconds"] = json!(DEFAULT_EXPIRATION_SECONDS);
        }
        if spec["audiences"].as_array().is_none_or(Vec::is_empty) {
            spec["audiences"] = json!(self.audiences);
        }
        let expiration = spec["expirationSeconds"].as_i64().unwrap_or(0);
        let mut errors = Vec::new();
        if expiration < MIN_EXPIRATION_SECONDS {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration less than 10 minutes",
            ));
        } else if expiration > MAX_EXPIRATION_SECONDS {
            errors.push(FieldError::invalid(
                "spec.expirationSeconds",
                expiration,
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !errors.is_empty() {
            let kind = crate::meta::GroupResource {
                group: "authentication.k8s.io",
                resource: "TokenRequest",
            };
            let causes = errors.iter().map(FieldError::cause).collect();
            return Err(ApiError::invalid(
                "TokenRequest.authentication.k8s.io",
                kind,
                &name,
                causes,
            ));
        }
        let audiences: Vec<String> = spec["audiences"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();

        let mut private = Private {
            namespace: ns.clone(),
            serviceaccount: Ref {
                name: name.clone(),
                uid: object::uid(account).to_string(),
            },
            pod: None,
            secret: None,
            node: None,
        };
        if let Some(bound) = spec.get("boundObjectRef").filter(|b| b.is_object()) {
            let kind = bound["kind"].as_str().unwrap_or("");
            let bound_name = bound["name"].as_str().unwrap_or("");
            let (plural, namespace) = match kind {
                "Pod" => ("pods", ns.as_str()),
                "Secret" => ("secrets", ns.as_str()),
                "Node" => ("nodes", ""),
                _ => {
                    return Err(ApiError::bad_request(format!(
                    "cannot bind token for serviceaccount \"{name}\" to object of kind \"{kind}\""
                )))
                }
            };
            let store = registry
                .get("", plural)
                .ok_or_else(ApiError::path_not_found)?;
            let obj = store.get(namespace, bound_name).await?;
            let uid = object::uid(&obj).to_string();
            if let Some(given) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
                if given != uid {
                    return Err(ApiError::conflict(
                        crate::meta::GroupResource {
                            group: "",
                            resource: plural,
                        },
                        bound_name,
                        &format!("the UID in the bound object reference ({given}) does not match the UID in record. The object might have been deleted and then recreated"),
                    ));
                }
            }
            let reference = Some(Ref {
                name: bound_name.to_string(),
                uid,
            });
            match kind {
                "Pod" => {
                    private.pod = reference;
                    // The Pod's node goes into the token too (upstream's
                    // ServiceAccountTokenPodNodeInfo, on in v1.32).
                    let node = obj["spec"]["nodeName"].as_str().unwrap_or("");
                    if let Some(nodes) = registry.get("", "nodes").filter(|_| !node.is_empty()) {
                        if let Ok(found) = nodes.get("", node).await {
                            private.node = Some(Ref {
                                name: node.to_string(),
                                uid: object::uid(&found).to_string(),
                            });
                        }
                    }
                }
                "Secret" => private.secret = reference,
                _ => private.node = reference,
            }
        }

        let now = jiff::Timestamp::now();
        let issued = now.as_second();
        let claims = Claims {
            aud: audiences,
            exp: issued + expiration,
            iat: issued,
            iss: self.issuer.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: private,
            nbf: issued,
            sub: format!("system:serviceaccount:{ns}:{name}"),
        };
        let token = self.sign(&claims)?;
        let expires = jiff::Timestamp::from_second(claims.exp)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        request["apiVersion"] = json!("authentication.k8s.io/v1");
        request["kind"] = json!("TokenRequest");
        request["metadata"]["creationTimestamp"] =
            json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string());
        request["status"] = json!({
            "token": token,
            "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        });
        Ok(request)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn tokens(dir: &Path) -> Tokens {
        let (key, public) = (dir.join("sa.key"), dir.join("sa.pub"));
        crate::cluster::pki::service_account_key_pair(&key, &public).unwrap();
        Tokens::load(Some(&public), Some(&key), DEFAULT_ISSUER, &[]).unwrap()
    }

    fn claims(exp_in: i64, aud: &str) -> Claims {
        let now = jiff::Timestamp::now().as_second();
        Claims {
            aud: vec![aud.to_string()],
            exp: now + exp_in,
            iat: now,
            iss: DEFAULT_ISSUER.to_string(),
            jti: "j".into(),
            kubernetes: Private {
                namespace: "d".into(),
                serviceaccount: Ref {
                    name: "default".into(),
                    uid: "u".into(),
                },
                pod: None,
                secret: None,
                node: None,
            },
            nbf: now,
            sub: "system:serviceaccount:d:default".into(),
        }
    }

    #[test]
    fn a_signed_token_verifies_and_a_tampered_expired_or_foreign_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let t = tokens(dir.path());
        let good = claims(600, DEFAULT_ISSUER);
        let token = t.sign(&good).unwrap();
        assert_eq!(t.verify(&token), Some(good.clone()));

        let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
        parts[1] = {
            use base64::Engine as _;
            let mut forged = good.clone();
            forged.kubernetes.serviceaccount.name = "admin".into();
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(serde_json::to_vec(&forged).unwrap())
        };
        assert_eq!(t.verify(&parts.join(".")), None, "a changed payload");
        assert_eq!(
            t.verify(&t.sign(&claims(-10, DEFAULT_ISSUER)).unwrap()),
            None
        );
        assert_eq!(t.verify(&t.sign(&claims(600, "vault")).unwrap()), None);
        let other = tempfile::tempdir().unwrap();
        assert_eq!(tokens(other.path()).verify(&token), None, "another key");
        assert_eq!(t.verify("not.a.token"), None);
        assert_eq!(t.verify(""), None);
    }
}

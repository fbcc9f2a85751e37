//! SCRAM-SHA-256 (RFC 5802, RFC 7677) on the server side, from a stored verifier: the
//! users file keeps what PostgreSQL keeps (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`),
//! from which a client's proof can be checked but no client can be impersonated.
//! (pgwire's own SCRAM wants the salted password, which is as good as the password.)

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ring::{digest, hmac, pbkdf2};

/// Iterations of PBKDF2 for new verifiers (PostgreSQL's default).
pub const ITERATIONS: u32 = 4096;

/// What the users file keeps of a password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    pub iterations: u32,
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    hmac::sign(&k, msg).as_ref().to_vec()
}

fn sha256(data: &[u8]) -> Vec<u8> {
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}

/// Equal bytes, compared in time that does not depend on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Verifier {
    /// The verifier of `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<Verifier, String> {
        let mut salt = vec![0u8; 16];
        getrandom::getrandom(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
        Ok(Verifier::with_salt(password, salt, ITERATIONS))
    }

    /// The verifier of `password` with a given salt (SASLprep is left out: passwords
    /// are taken as their UTF-8 bytes, as libpq does for ASCII ones).
    pub fn with_salt(password: &str, salt: Vec<u8>, iterations: u32) -> Verifier {
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            std::num::NonZeroU32::new(iterations.max(1)).expect("non-zero"),
            &salt,
            password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        Verifier {
            iterations,
            salt,
            stored_key: sha256(&client_key),
            server_key: hmac_sha256(&salted, b"Server Key"),
        }
    }

    /// PostgreSQL's text form.
    pub fn encode(&self) -> String {
        format!(
            "SCRAM-SHA-256${}:{}${}:{}",
            self.iterations,
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key)
        )
    }

    /// Reads PostgreSQL's text form.
    pub fn decode(s: &str) -> Result<Verifier, String> {
        let bad =
            || "not a SCRAM-SHA-256 verifier (SCRAM-SHA-256$ITER:SALT$STORED:SERVER)".to_string();
        let rest = s.strip_prefix("SCRAM-SHA-256$").ok_or_else(bad)?;
        let (params, keys) = rest.split_once('$').ok_or_else(bad)?;
        let (iter, salt) = params.split_once(':').ok_or_else(bad)?;
        let (stored, server) = keys.split_once(':').ok_or_else(bad)?;
        let b = |t: &str| B64.decode(t).map_err(|_| bad());
        let v = Verifier {
            iterations: iter.parse().map_err(|_| bad())?,
            salt: b(salt)?,
            stored_key: b(stored)?,
            server_key: b(server)?,
        };
        if v.iterations == 0 || v.stored_key.len() != 32 || v.server_key.len() != 32 {
            return Err(bad());
        }
        Ok(v)
    }
}

/// The server's half of one exchange, between its first message and the client's last.
#[derive(Debug)]
pub struct Exchange {
    /// `None` for a user that does not exist: the exchange runs to the end and fails
    /// there, so a client cannot tell unknown users from wrong passwords.
    verifier: Option<Verifier>,
    gs2_header: String,
    client_first_bare: String,
    server_first: String,
    nonce: String,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ScramError {
    /// A message that does not follow RFC 5802.
    Malformed(&'static str),
    /// The proof does not match: a wrong password, or no such user.
    WrongPassword,
}

/// Reads the client's first message (`n,,n=user,r=nonce`) and answers it: the server's
/// first message (`r=…,s=…,i=…`) and the exchange to finish. `verifier` is the user's,
/// `None` when there is no such user.
pub fn server_first(
    client_first: &[u8],
    verifier: Option<Verifier>,
) -> Result<(String, Exchange), ScramError> {
    let text = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
    // gs2-header: channel binding flag, authzid, then the bare message.
    let mut parts = text.splitn(3, ',');
    let flag = parts.next().unwrap_or_default();
    let authzid = parts.next().ok_or(ScramError::Malformed("no gs2 header"))?;
    let bare = parts
        .next()
        .ok_or(ScramError::Malformed("no client-first-message-bare"))?;
    if !(flag == "n" || flag == "y") {
        // `p=…` asks for channel binding, which is not offered.
        return Err(ScramError::Malformed("channel binding is not offered"));
    }
    let client_nonce = bare
        .split(',')
        .find_map(|a| a.strip_prefix("r="))
        .filter(|n| !n.is_empty())
        .ok_or(ScramError::Malformed("no client nonce"))?;
    let mut ours = [0u8; 18];
    getrandom::getrandom(&mut ours).map_err(|_| ScramError::Malformed("no randomness"))?;
    let nonce = format!("{client_nonce}{}", B64.encode(ours));
    // An unknown user gets a salt that looks like any other (fixed per server run
    // would be better still; random is enough to not tell them apart at a glance).
    let (salt, iterations) = match &verifier {
        Some(v) => (v.salt.clone(), v.iterations),
        None => {
            let mut s = vec![0u8; 16];
            let _ = getrandom::getrandom(&mut s);
            (s, ITERATIONS)
        }
    };
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
    Ok((
        server_first.clone(),
        Exchange {
            verifier,
            gs2_header: format!("{flag},{authzid},"),
            client_first_bare: bare.to_string(),
            server_first,
            nonce,
        },
    ))
}

impl Exchange {
    /// Checks the client's final message (`c=…,r=…,p=…`); on success the server's
    /// final message (`v=…`), which proves to the client that the server knew the verifier.
    pub fn finish(&self, client_final: &[u8]) -> Result<String, ScramError> {
        let text =
            std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or(ScramError::Malformed("no proof"))?;
        let mut binding = None;
        let mut nonce = None;
        for a in without_proof.split(',') {
            if let Some(v) = a.strip_prefix("c=") {
                binding = Some(v);
            } else if let Some(v) = a.strip_prefix("r=") {
                nonce = Some(v);
            }
        }
        if binding != Some(B64.encode(&self.gs2_header).as_str()) {
            return Err(ScramError::Malformed("channel binding does not match"));
        }
        if nonce != Some(self.nonce.as_str()) {
            return Err(ScramError::Malformed("nonce does not match"));
        }
        let proof = B64
            .decode(proof)
            .map_err(|_| ScramError::Malformed("proof is not base64"))?;
        let Some(v) = &self.verifier else {
            return Err(ScramError::WrongPassword);
        };
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        let signature = hmac_sha256(&v.stored_key, auth_message.as_bytes());
        if proof.len() != signature.len() {
            return Err(ScramError::WrongPassword);
        }
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(p, s)| p ^ s).collect();
        if !same(&sha256(&client_key), &v.stored_key) {
            return Err(ScramError::WrongPassword);
        }
        let server_signature = hmac_sha256(&v.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_signature)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3's example exchange (user "user", password "pencil"), with the
    /// server's nonce taken from the example instead of a random one.
    #[test]
    fn rfc7677_example_exchange() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = Verifier::with_salt("pencil", salt, 4096);
        let ex = Exchange {
            verifier: Some(v.clone()),
            gs2_header: "n,,".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            server_first: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096".into(),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
        };
        let last = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(
            ex.finish(last).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        // A flipped bit of the proof is a wrong password; no user is one too.
        let wrong = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        assert_eq!(ex.finish(wrong), Err(ScramError::WrongPassword));
        let nobody = Exchange {
            verifier: None,
            ..ex
        };
        assert_eq!(nobody.finish(last), Err(ScramError::WrongPassword));
        // The text form round-trips and holds neither the password nor the salted one.
        let text = v.encode();
        assert_eq!(Verifier::decode(&text).unwrap(), v);
        assert!(!text.contains("pencil"));
        assert!(Verifier::decode("md5abc").is_err());
    }

    #[test]
    fn first_message_is_read_and_answered() {
        let v = Verifier::with_salt("pw", vec![1; 16], 4096);
        let (first, ex) = server_first(b"n,,n=alice,r=abc", Some(v)).unwrap();
        assert!(first.starts_with("r=abc"), "{first}");
        assert!(first.ends_with(",i=4096"), "{first}");
        assert_eq!(ex.client_first_bare, "n=alice,r=abc");
        assert!(server_first(b"p=tls-server-end-point,,n=a,r=b", None).is_err());
        assert!(server_first(b"n,,n=a", None).is_err());
        assert!(server_first(&[0xff, 0xfe], None).is_err());
    }
}

//! Sequence numbers in trace_ids: a source whose log numbers its events per device
//! (AWS CloudHSM: per HSM, from a reboot counter on) writes them into each row's
//! `trace_id`, and `status` reads them back to name the gaps. What a sequence is
//! belongs with the rows, so any later source with sequence numbers reuses it.

/// The trace_id of a numbered event: `<tenant>/<device>/<reboot counter>/<sequence no>`
/// (hex as the log writes them), or `<tenant>/-/<reboot>/<seq>/<usecs>` when the input
/// does not name the device.
pub fn trace_id(tenant: &str, hsm: Option<&str>, reboot: u64, seq: u64, usecs: i64) -> String {
    match hsm {
        Some(h) => format!("{tenant}/{h}/{reboot:#x}/{seq:#x}"),
        None => format!("{tenant}/-/{reboot:#x}/{seq:#x}/{usecs}"),
    }
}

/// The device (None: not named by the input), reboot counter and sequence number of a
/// [`trace_id`]; None for any other trace_id. Read from the right, so a tenant holding
/// `/` does not matter.
pub fn sequence_of(trace_id: &str) -> Option<(Option<&str>, u64, u64)> {
    let hex = |s: &str| {
        s.strip_prefix("0x")
            .and_then(|h| u64::from_str_radix(h, 16).ok())
    };
    let mut p = trace_id.rsplit('/');
    let last = p.next()?;
    if last.starts_with("0x") {
        let seq = hex(last)?;
        let reboot = hex(p.next()?)?;
        let hsm = p.next()?;
        p.next()?; // the tenant
        (hsm != "-").then_some((Some(hsm), reboot, seq))
    } else {
        last.parse::<i64>().ok()?;
        let seq = hex(p.next()?)?;
        let reboot = hex(p.next()?)?;
        (p.next()? == "-" && p.next().is_some()).then_some((None, reboot, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_give_their_sequence_back() {
        let t = trace_id("c/1", Some("hsm-a"), 0x2a, 0x10, 5);
        assert_eq!(t, "c/1/hsm-a/0x2a/0x10");
        assert_eq!(sequence_of(&t), Some((Some("hsm-a"), 0x2a, 0x10)));
        let t = trace_id("c", None, 1, 2, 1717243200123456);
        assert_eq!(sequence_of(&t), Some((None, 1, 2)));
        for other in [
            "h:abc",
            "0x1/0x2",
            "c/-/0x1/0x2",
            "x/y/0x1/zz",
            "",
            "a/b/c/d/e",
        ] {
            assert_eq!(sequence_of(other), None, "{other}");
        }
    }
}

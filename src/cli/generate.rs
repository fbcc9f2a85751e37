//! `auditlake generate`: realistic synthetic exports (DPoD, AWS CloudHSM, Azure Key Vault
//! and Managed HSM, Google Cloud KMS, HashiCorp Vault) for trying auditlake out, tests and
//! benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use super::common::Global;
use super::EXIT_OK;
use crate::generate::azure::{AzureForm, AzureOptions, AzureService};
use crate::generate::cloudhsm::{CloudHsmForm, CloudHsmOptions};
use crate::generate::gcp::{GcpForm, GcpOptions};
use crate::generate::vault::VaultOptions;
use crate::generate::{generate, ExportFormat, GenerateOptions, Vendor};
use crate::status::human_bytes;
use crate::Result;

/// Write realistic synthetic exports (for trying auditlake out, tests and benchmarks).
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Directory to write the exports into.
    #[arg(short = 'o', long = "output", alias = "out", value_name = "DIR")]
    pub output: PathBuf,
    /// Events in total, across tenants and months.
    #[arg(long, default_value_t = 100_000)]
    pub events: u64,
    #[arg(long, default_value_t = 3)]
    pub tenants: u32,
    /// First month (YYYY-MM).
    #[arg(long, default_value = "2025-01")]
    pub start: String,
    #[arg(long, default_value_t = 12)]
    pub months: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long, value_enum, default_value_t = ExportFormat::Zip)]
    pub format: ExportFormat,
    /// Hours each export reaches into the next month (exports overlap at their edges).
    #[arg(long, default_value_t = 6)]
    pub overlap_hours: u32,
    /// Plant incidents (bursts, zeroize, a new IP at night, a dormant key, ...) and
    /// write what was planted to the --manifest file.
    #[arg(long)]
    pub incidents: bool,
    /// Where --incidents writes its manifest (JSON; default: DIR.incidents.json
    /// beside the output directory, so that converting DIR does not read it).
    #[arg(long, value_name = "FILE", requires = "incidents")]
    pub manifest: Option<PathBuf>,
    /// Each tenant keeps office hours in its own time zone (Europe/London, Asia/Tokyo,
    /// America/New_York, Asia/Kolkata, in turn; summer time followed) instead of all in
    /// UTC, and DIR.rules.toml beside the output names each tenant's zone for --rules.
    #[arg(long)]
    pub zones: bool,
    /// Traffic shaped as real tenants work: people on weekdays 07:00-19:00 local, batch
    /// jobs every night at 01:00 local, each client using the keys of its own partition;
    /// a monthly batch key rotation (12 keys made, their check values computed, and 12
    /// old ones destroyed within an hour on the first Sunday, 02:00 local) and a new hire
    /// every two months or so. Findings should call none of it high.
    #[arg(long)]
    pub routine: bool,
    /// Write every Nth export of each tenant (its 1st, N+1th, ...) as one single line:
    /// the whole JSON array without a line break (zip and json formats).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub one_line_every: u32,
    /// Whose logs: DPoD exports; AWS CloudHSM audit logs (--tenants clusters of two HSMs
    /// each, in the --cloudhsm-form; --incidents plants the kinds a CloudHSM log can
    /// show); Azure Key Vault or Managed HSM audit events (--tenants subscriptions, blobs
    /// per resource and hour in the --azure-form); Google Cloud KMS audit logs (--tenants
    /// projects, in the --gcp-form); HashiCorp Vault audit files (--tenants directories,
    /// convert each with --tenant <directory name>). --format, --overlap-hours, --zones,
    /// --routine and --one-line-every are DPoD's.
    #[arg(long, value_enum, default_value_t = Vendor::Dpod)]
    pub vendor: Vendor,
    /// The form of AWS CloudHSM logs: subscription deliveries name their cluster;
    /// convert the others with --tenant <cluster-id>.
    #[arg(long, value_enum, default_value_t = CloudHsmForm::Subscription)]
    pub cloudhsm_form: CloudHsmForm,
    /// The form of each Azure blob (azure-keyvault, azure-mhsm): JSON Lines, as written
    /// since November 2018, or the {"records":[...]} envelope before.
    #[arg(long, value_enum, default_value_t = AzureForm::Lines)]
    pub azure_form: AzureForm,
    /// The layout of Google Cloud KMS logs: a log sink's Cloud Storage objects (one file
    /// per log and hour), or `gcloud logging read --format=json` output (one array per
    /// project and month, newest first).
    #[arg(long, value_enum, default_value_t = GcpForm::Sink)]
    pub gcp_form: GcpForm,
}

/// Writes the exports, then notes how many and how large.
pub fn run(args: GenerateArgs, _global: &Global) -> Result<ExitCode> {
    let GenerateArgs {
        output,
        events,
        tenants,
        start,
        months,
        seed,
        format,
        overlap_hours,
        incidents,
        manifest,
        zones,
        routine,
        one_line_every,
        vendor,
        cloudhsm_form,
        azure_form,
        gcp_form,
    } = args;
    if vendor == Vendor::AwsCloudhsm && (zones || routine || one_line_every > 0) {
        return Err(crate::Error::Usage(
            "--zones, --routine and --one-line-every shape DPoD exports: not with --vendor aws-cloudhsm"
                .into(),
        ));
    }
    let cloud = matches!(
        vendor,
        Vendor::AzureKeyvault | Vendor::AzureMhsm | Vendor::GcpKms | Vendor::HashicorpVault
    );
    if cloud && (zones || routine || one_line_every > 0 || incidents) {
        let name = clap::ValueEnum::to_possible_value(&vendor)
            .map(|v| v.get_name().to_string())
            .unwrap_or_default();
        return Err(crate::Error::Usage(format!(
            "--zones, --routine, --one-line-every and --incidents shape DPoD and CloudHSM exports: not with --vendor {name}"
        )));
    }
    if one_line_every > 0 && format == ExportFormat::Gzip {
        return Err(crate::Error::Usage(
            "--one-line-every writes JSON arrays: not with --format gzip (NDJSON)".into(),
        ));
    }
    let manifest = incidents.then(|| {
        manifest.unwrap_or_else(|| {
            let mut name = output.file_name().unwrap_or_default().to_os_string();
            name.push(".incidents.json");
            output.with_file_name(name)
        })
    });
    let rules = zones.then(|| {
        let mut name = output.file_name().unwrap_or_default().to_os_string();
        name.push(".rules.toml");
        output.with_file_name(name)
    });
    let paths = match vendor {
        Vendor::Dpod => generate(&GenerateOptions {
            out: output,
            events,
            tenants,
            start,
            months,
            seed,
            format,
            overlap_hours,
            manifest,
            zones,
            rules,
            one_line_every,
            routine,
        })?,
        Vendor::AwsCloudhsm => crate::generate::cloudhsm::generate(&CloudHsmOptions {
            out: output,
            events,
            clusters: tenants,
            start,
            months,
            seed,
            form: cloudhsm_form,
            overlap_hours,
            manifest,
        })?,
        Vendor::AzureKeyvault | Vendor::AzureMhsm => {
            crate::generate::azure::generate(&AzureOptions {
                out: output,
                events,
                subscriptions: tenants,
                start,
                months,
                seed,
                service: if vendor == Vendor::AzureMhsm {
                    AzureService::ManagedHsm
                } else {
                    AzureService::KeyVault
                },
                form: azure_form,
            })?
        }
        Vendor::GcpKms => crate::generate::gcp::generate(&GcpOptions {
            out: output,
            events,
            projects: tenants,
            start,
            months,
            seed,
            form: gcp_form,
        })?,
        Vendor::HashicorpVault => crate::generate::vault::generate(&VaultOptions {
            out: output,
            events,
            tenants,
            start,
            months,
            seed,
        })?,
    };
    let bytes: u64 = paths
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    crate::notes::note(&format!(
        "wrote {} exports ({})",
        paths.len(),
        human_bytes(bytes)
    ));
    Ok(ExitCode::from(EXIT_OK))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Args, Command};

    fn parse(args: &[&str]) -> GenerateArgs {
        let mut argv = vec!["auditlake", "generate"];
        argv.extend_from_slice(args);
        match Args::try_parse_from(argv).unwrap().command {
            Command::Generate(a) => a,
            other => panic!("{other:?}"),
        }
    }

    fn global() -> Global {
        Global {
            quiet: true,
            config: None,
            profile: None,
        }
    }

    #[test]
    fn generate_writes_each_cloud_vendor_and_refuses_the_dpod_shaping_flags() {
        let dir = tempfile::tempdir().unwrap();
        for (vendor, extra) in [
            ("azure-keyvault", "--azure-form=records"),
            ("azure-mhsm", "--azure-form=lines"),
            ("gcp-kms", "--gcp-form=gcloud"),
            ("hashicorp-vault", "--seed=3"),
        ] {
            let out = dir.path().join(vendor);
            let out = out.to_str().unwrap();
            let small = [
                "-o", out, "--vendor", vendor, "--events", "300", "--months", "1",
            ];
            let mut args = small.to_vec();
            args.push(extra);
            run(parse(&args), &global()).unwrap();
            assert!(std::fs::read_dir(out).unwrap().next().is_some(), "{vendor}");
            for flag in ["--zones", "--routine", "--one-line-every=2", "--incidents"] {
                let mut args = small.to_vec();
                args.push(flag);
                let err = run(parse(&args), &global()).unwrap_err().to_string();
                assert!(
                    err.contains("--incidents shape DPoD and CloudHSM exports: not with --vendor"),
                    "{err}"
                );
                assert!(err.ends_with(vendor), "{err}");
            }
        }
    }
}

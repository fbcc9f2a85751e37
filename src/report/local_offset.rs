//! `local_offset(tenant_id, time)`: the SQL function that turns a UTC time into a
//! tenant's local clock, as the interval to add, from the rules' zone of that tenant
//! (summer time followed for IANA zones; fixed offsets as they are).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::array::{Array, IntervalMonthDayNanoArray};
use arrow::datatypes::{
    DataType, IntervalMonthDayNano, IntervalUnit, TimeUnit, TimestampMicrosecondType,
};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use super::rules::Zone;

/// The zones of the tenants the rules name, and the one of all others.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct LocalOffset {
    zones: BTreeMap<String, Zone>,
    default: Zone,
    signature: Signature,
}

impl LocalOffset {
    pub fn udf(zones: BTreeMap<String, Zone>, default: Zone) -> ScalarUDF {
        ScalarUDF::from(LocalOffset {
            zones,
            default,
            signature: Signature::any(2, Volatility::Immutable),
        })
    }
}

impl ScalarUDFImpl for LocalOffset {
    fn name(&self) -> &str {
        "local_offset"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(DataType::Interval(IntervalUnit::MonthDayNano))
    }

    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        // Partition columns arrive dictionary-encoded and times with a zone: plain forms.
        let tenants = arrow::compute::cast(&arrays[0], &DataType::Utf8)?;
        let tenants = tenants.as_string::<i32>();
        let times = arrow::compute::cast(
            &arrays[1],
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        // Rows come sorted by time within a tenant's file: the offset is looked up once
        // per tenant and quarter hour (summer time changes on one).
        const QUARTER: i64 = 900_000_000;
        let mut last: Option<(&str, i64, i32)> = None;
        let out: IntervalMonthDayNanoArray = (0..times.len())
            .map(|i| {
                if tenants.is_null(i) || times.is_null(i) {
                    return None;
                }
                let (tenant, t) = (tenants.value(i), times.value(i));
                let hour = t.div_euclid(QUARTER);
                let secs = match last {
                    Some((lt, lh, s)) if lt == tenant && lh == hour => s,
                    _ => {
                        let zone = self.zones.get(tenant).copied().unwrap_or(self.default);
                        let s = zone.offset_seconds_at(t);
                        last = Some((tenant, hour, s));
                        s
                    }
                };
                Some(IntervalMonthDayNano::new(0, 0, secs as i64 * 1_000_000_000))
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

//! `/subsz`: the subscription index and its cache statistics.

use super::connz::SubDetail;
use super::query::Query;
use crate::server::ServerShared;
use crate::subject;
use crate::timefmt;
use serde::Serialize;
use std::time::SystemTime;

#[derive(Serialize)]
pub struct Subsz {
    pub server_id: String,
    pub now: String,
    pub num_subscriptions: u64,
    pub num_cache: u64,
    pub num_inserts: u64,
    pub num_removes: u64,
    pub num_matches: u64,
    pub cache_hit_rate: f64,
    pub max_fanout: u64,
    pub avg_fanout: f64,
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscriptions_list: Option<Vec<SubDetail>>,
}

pub fn subsz(srv: &ServerShared, q: &Query) -> Result<Subsz, String> {
    let detail = q.bool("subs")?;
    let offset = q.int("offset")?.max(0) as usize;
    let mut limit = q.int("limit")?;
    if limit <= 0 {
        limit = 1024;
    }
    let limit = limit as usize;
    let test = q.get("test");
    if !test.is_empty() && !subject::is_valid_literal_subject(test.as_bytes()) {
        return Err(format!(
            "invalid test subject, must be valid publish subject: {test}"
        ));
    }
    let st = srv.sublist.stats();
    let mut total = 0;
    let mut list = None;
    if detail {
        let mut subs: Vec<SubDetail> = srv
            .sublist
            .all()
            .iter()
            .filter(|s| test.is_empty() || subject::matches(&s.subject, test.as_bytes()))
            .map(|s| SubDetail::from(&s.snapshot()))
            .collect();
        subs.sort_by(|a, b| (a.cid, &a.sid).cmp(&(b.cid, &b.sid)));
        total = subs.len();
        let page: Vec<SubDetail> = subs.into_iter().skip(offset).take(limit).collect();
        list = (!page.is_empty()).then_some(page);
    }
    Ok(Subsz {
        server_id: srv.server_id.clone(),
        now: timefmt::rfc3339(SystemTime::now()),
        num_subscriptions: st.num_subs,
        num_cache: st.num_cache,
        num_inserts: st.num_inserts,
        num_removes: st.num_removes,
        num_matches: st.num_matches,
        cache_hit_rate: st.cache_hit_rate,
        max_fanout: st.max_fanout,
        avg_fanout: st.avg_fanout,
        total,
        offset,
        limit,
        subscriptions_list: list,
    })
}

//! The rows the service writes.

use diesel::prelude::*;

use crate::schema::message;

/// A message as it is inserted: the value is its own key.
#[derive(Debug, Insertable)]
#[diesel(table_name = message)]
pub struct NewMessage<'a> {
    pub value: &'a str,
}

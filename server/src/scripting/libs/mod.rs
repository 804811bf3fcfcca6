//! Libraries Redis embeds in its Lua: cjson, cmsgpack, bit, struct (written here in Rust).

use mlua::Lua;

pub fn install(_lua: &Lua) -> mlua::Result<()> {
    Ok(())
}

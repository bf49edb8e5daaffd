function on_load()
  local x = = 1
end

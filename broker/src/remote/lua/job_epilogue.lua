local reply = main()
if (wake > 0 or drained) and redis.call('EXISTS', marker) == 1 then
  if wake > 0 then redis.call('PUBLISH', channel, 'wake:' .. wake .. ':-:0:0:0:0:') end
  if drained then redis.call('PUBLISH', channel, 'drained:0:-:0:0:0:0:') end
end
return reply

// Gives librdkafka's mock cluster a fixed listen port: the mock always binds 127.0.0.1:0, so the dev broker
// interposes bind() in its own executable only and rewrites the first such bind to the wanted port.
#ifndef FUNNEL_BIND_INTERPOSE_H
#define FUNNEL_BIND_INTERPOSE_H
/// Sets the port that the next bind() of an IPv4 socket to port 0 receives (once). 0 disables.
void funnel_devbroker_set_port(int port);
/// 1 once the wanted port has been handed out.
int funnel_devbroker_port_used(void);
#endif

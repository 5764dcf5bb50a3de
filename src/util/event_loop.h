/*
 * event_loop.h: the one event-loop thread (epoll): consoles, sockets, timers. Callbacks run
 * on the loop thread. evl_add_fd and evl_del_fd may be called from any thread.
 */
#ifndef KHYVE_EVENT_LOOP_H
#define KHYVE_EVENT_LOOP_H

#include <stdint.h>

struct event_loop;

typedef void (*evl_fd_fn)(void *opaque, int fd, uint32_t epoll_events);

int evl_create(struct event_loop **out);
void evl_destroy(struct event_loop *loop);
/* Watch fd for epoll_events (EPOLLIN...). 0 or -errno. */
int evl_add_fd(struct event_loop *loop, int fd, uint32_t epoll_events, evl_fd_fn fn,
	       void *opaque);
int evl_del_fd(struct event_loop *loop, int fd);
/* Run callbacks until evl_stop(); returns 0. */
int evl_run(struct event_loop *loop);
/* Make evl_run return. Any thread, async-signal-safe. */
void evl_stop(struct event_loop *loop);

#endif

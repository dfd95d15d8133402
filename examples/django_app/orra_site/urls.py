from django.urls import path

from . import views

urlpatterns = [
    path("chat/", views.chat, name="chat"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<str:conversation>/", views.session, name="session"),
]
